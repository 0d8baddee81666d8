/*
 * exporterhelper.c - sending queue, retries and outcomes of the OTLP exporters (see
 * exporterhelper.h).
 *
 * A request is in exactly one of three lists: `queue` (FIFO, waiting for a
 * consumer slot), `sending` (an attempt is under way in the transport) or
 * `waiting` (backing off, sorted by when its next attempt is due). A request in
 * `sending` or `waiting` holds one of the num_consumers slots, as a collector
 * consumer goroutine stays busy while its request backs off; so a backend that is
 * down fills the queue, and the queue then pushes back to the pipeline.
 *
 * The helper's two timers (the earliest retry due, the shutdown deadline) are its
 * own uv_timer_t rather than api->timer_start() ones, because the host closes an
 * instance's timers when shutdown() returns, while retries and the deadline must
 * outlive that call.
 *
 * Persistent queue (`sending_queue.storage`). The storage extension's queues (one
 * per signal, named after it) take the place of the in-memory queue: consume()
 * appends the batch's encoded request, with its item count as the record's
 * weight, and releases the batch; dispatch() reads records back into new batches
 * (round robin over the signals) while a consumer slot is free, and finish()
 * confirms a record once the backend accepted it or it failed for good. The
 * bound is queue_size over what the storage holds unconfirmed (being sent
 * included), in the sizer's unit. `queue` then holds only batches taken by
 * syc_xh_consume_all() whose append failed half way (the disk was full): they
 * are appended again before anything new is taken. At shutdown nothing is given
 * up: what is not confirmed stays for the next run, which reads it first. The
 * first dispatch is deferred to a zero timer (room_timer), since the transport
 * opens its handles after syc_xh_start().
 */
#include "exporterhelper.h"
#include "compress.h"
#include "signals.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <switchyard/storage.h>

#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "otlp_json.h"

const char *const syc_xh_sizer_names[] = {"requests", "items", "bytes", NULL};
const char *const syc_xh_compression_names[] = {"gzip",    "zstd", "none", "snappy",
                                                "deflate", "zlib", NULL};
const char *const syc_xh_grpc_compression_names[] = {"gzip", "zstd", "none", "snappy", NULL};

enum { WHERE_QUEUED = 0, WHERE_SENDING = 1, WHERE_WAITING = 2 };

/* A doubly linked list of requests. */
typedef struct req_list_s {
    syc_xh_req_t *head, *tail;
    size_t n;
} req_list_t;

struct syc_xh_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const syc_xh_config_t *cfg;
    const syc_xh_ops_t *ops;
    void *ctx;
    uv_loop_t *loop;

    req_list_t queue;          /* waiting for a slot */
    req_list_t sending;        /* an attempt under way: holds a slot */
    req_list_t waiting;        /* backing off, earliest due first: holds a slot */
    uint64_t queued;           /* queue use in units of the sizer */
    uint64_t queued_bytes;     /* and in bytes, for sending_queue.max_bytes */
    uint64_t retrying;         /* `waiting` in units of the sizer */
    uint64_t capacity;         /* queue_size, or 0 without a queue */
    size_t consumers;          /* slots */
    bool want_ready;           /* consume() said SY_EAGAIN: call api->ready() on room */
    bool closing;              /* shutdown began */
    uint64_t rng;              /* xorshift64 state for the jitter */
    uv_timer_t retry_timer;    /* fires when waiting.head is due */
    uv_timer_t deadline_timer; /* the shutdown deadline */
    bool timers_open;
    void (*drained)(void *arg);
    void *drained_arg;

    /* Drops from a full queue are logged at most once a second, with a count. */
    uint64_t drops_unlogged;
    uint64_t drop_log_ms;

    /* The persistent queue: the storage interface and one queue per signal. */
    const sy_storage_t *store;
    sy_storage_queue_t *sq[SYC_SIGNAL_COUNT];
    int rr;                  /* the signal whose queue is read next */
    uv_timer_t room_timer;   /* the first dispatch; retrying an append refused */
    sy_storage_stats_t seen; /* the counters as last copied into the metrics */
    uint64_t kept;           /* requests left in the storage at shutdown */
    uint64_t append_log_ms;
    sy_metric_t *m_pq_records, *m_pq_disk, *m_pq_confirmed, *m_pq_corrupt, *m_pq_recovered,
        *m_pq_redelivered;

    /* Handover at a reload (see "Handover" below): the registry's links, this
     * helper's id and rank there, and what its predecessor handed over. Under
     * reg_mu: accepting, inbox*, reg_next. */
    syc_xh_t *reg_next;
    char *reg_id;
    uint64_t reg_seq;
    uint32_t reg_signals;
    bool accepting;         /* takes handovers: made, not shutting down */
    bool async_open;        /* inbox_async is initialised (started) */
    uv_async_t inbox_async; /* a handover arrived after start() */
    sy_batch_t **inbox;     /* handed over, oldest first */
    size_t inbox_n, inbox_cap;
    uint64_t handed_items, handed_reqs; /* by this one to its successor */
    sy_metric_t *m_handed;

    sy_metric_t *m_queue_size;
    sy_metric_t *m_queue_capacity;
    sy_metric_t *m_enqueue_failed[3];
    sy_metric_t *m_retries;
};

/* ---- configuration ------------------------------------------------------------ */

int syc_xh_config_validate(const syc_xh_config_t *c, char *err, size_t err_len)
{
    if (c->timeout_ns < 0) {
        snprintf(err, err_len, "'timeout' must not be negative");
        return SY_EINVAL;
    }
    if (c->retry_enabled) {
        if (c->initial_interval_ns <= 0 || c->max_interval_ns <= 0) {
            snprintf(err, err_len,
                     "'retry_on_failure.initial_interval' and 'max_interval' must be positive");
            return SY_EINVAL;
        }
        if (c->max_elapsed_ns < 0) {
            snprintf(err, err_len, "'retry_on_failure.max_elapsed_time' must not be negative");
            return SY_EINVAL;
        }
        if (c->multiplier < 1.0 || c->multiplier > 1000.0) {
            snprintf(err, err_len, "'retry_on_failure.multiplier' must be between 1 and 1000");
            return SY_EINVAL;
        }
        if (c->randomization_factor < 0.0 || c->randomization_factor > 1.0) {
            snprintf(err, err_len,
                     "'retry_on_failure.randomization_factor' must be between 0 and 1");
            return SY_EINVAL;
        }
    }
    if (c->storage && *c->storage && !c->queue_enabled) {
        snprintf(err, err_len,
                 "'sending_queue.storage' needs the sending queue: remove it or set "
                 "'sending_queue.enabled: true'");
        return SY_EINVAL;
    }
    if (c->queue_enabled) {
        if (c->num_consumers < 1 || c->num_consumers > 10000) {
            snprintf(err, err_len, "'sending_queue.num_consumers' must be between 1 and 10000");
            return SY_EINVAL;
        }
        if (c->queue_size < 1) {
            snprintf(err, err_len, "'sending_queue.queue_size' must be positive");
            return SY_EINVAL;
        }
    }
    return SY_OK;
}

/* ---- small helpers ------------------------------------------------------------ */

static int signal_index(sy_signal_t s)
{
    return syc_signal_info(s)->index;
}

const char *syc_xh_item_name(sy_signal_t signal)
{
    return syc_signal_info(signal)->item_text;
}

static void list_push(req_list_t *l, syc_xh_req_t *r)
{
    r->next = NULL;
    r->prev = l->tail;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->n++;
}

static void list_remove(req_list_t *l, syc_xh_req_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    r->prev = r->next = NULL;
    l->n--;
}

/* A request's size in units of the sizer (the same at enqueue and at dequeue). */
static uint64_t sized(int sizer, uint64_t items, uint64_t bytes)
{
    return sizer == SYC_XH_SIZER_ITEMS ? items : sizer == SYC_XH_SIZER_BYTES ? bytes : 1;
}

static uint64_t req_size(const syc_xh_t *xh, const syc_xh_req_t *r)
{
    return sized(xh->cfg->sizer, r->items, r->bytes);
}

static uint64_t now_ms(syc_xh_t *xh)
{
    uv_update_time(xh->loop);
    return uv_now(xh->loop);
}

/* A uniform double in [0, 1) from the instance's own xorshift64 state. */
static double rand_unit(syc_xh_t *xh)
{
    uint64_t x = xh->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    xh->rng = x;
    return (double)(x >> 11) / 9007199254740992.0;
}

static size_t slots_used(const syc_xh_t *xh)
{
    return xh->sending.n + xh->waiting.n;
}

static req_list_t *list_of(syc_xh_t *xh, const syc_xh_req_t *r)
{
    return r->where == WHERE_QUEUED    ? &xh->queue
           : r->where == WHERE_SENDING ? &xh->sending
                                       : &xh->waiting;
}

/* Takes r's share off the queue's use (r has just left the queue). */
static void unqueued(syc_xh_t *xh, const syc_xh_req_t *r)
{
    xh->queued -= req_size(xh, r);
    xh->queued_bytes -= r->bytes;
}

/* Whether `size` (in units of the sizer) and `bytes` more would pass the queue's
 * bounds: queue_size, and sending_queue.max_bytes whatever the sizer. A request
 * larger than the whole queue is taken when the queue is empty, so that it is
 * never refused for ever. */
static bool queue_full(const syc_xh_t *xh, uint64_t size, uint64_t bytes)
{
    if (!xh->queued) return false;
    uint64_t max_bytes = xh->cfg->max_bytes;
    return xh->queued + size > xh->capacity || (max_bytes && xh->queued_bytes + bytes > max_bytes);
}

/* exporter_queue_size counts what waits to be sent: the queue, and the requests
 * backing off before a retry (which hold a consumer slot, not queue room, but
 * are just as undelivered). */
static uint64_t stored_size(syc_xh_t *xh);

static void update_queue_gauge(syc_xh_t *xh)
{
    if (!xh->m_queue_size) return;
    /* With storage: everything not confirmed there (requests being sent or backing
     * off included), and batches waiting to be appended. */
    uint64_t v = xh->store ? stored_size(xh) + xh->queued : xh->queued + xh->retrying;
    xh->api->metric_set(xh->m_queue_size, (int64_t)v);
}

/* Takes `r` out of `waiting`. */
static void leave_waiting(syc_xh_t *xh, syc_xh_req_t *r)
{
    list_remove(&xh->waiting, r);
    xh->retrying -= req_size(xh, r);
    update_queue_gauge(xh);
}

/* ---- the life of a request ------------------------------------------------------- */

static void dispatch(syc_xh_t *xh);
static void check_drained(syc_xh_t *xh);
static void on_retry_due(uv_timer_t *t);
static void stored_confirm(syc_xh_t *xh, syc_xh_req_t *r);
static bool stored_dispatch_one(syc_xh_t *xh);
static void stored_flush_pending(syc_xh_t *xh);
static void stored_close(syc_xh_t *xh);
static void on_room(uv_timer_t *t);

/* The helper is done with a request: report, release, free the slot. */
static void finish(syc_xh_t *xh, syc_xh_req_t *r, uint64_t sent, uint64_t failed)
{
    if (r->where == WHERE_WAITING)
        leave_waiting(xh, r);
    else
        list_remove(list_of(xh, r), r);
    if (sent) xh->api->exporter_outcome(xh->inst, r->signal, sent, true);
    if (failed) xh->api->exporter_outcome(xh->inst, r->signal, failed, false);
    if (r->stored) stored_confirm(xh, r);
    xh->ops->req_free(xh->ctx, r);
    xh->api->batch_release(r->batch);
    free(r);
}

/* Moves `r` (already out of its list) into `sending` and starts an attempt. */
static void start_attempt(syc_xh_t *xh, syc_xh_req_t *r)
{
    r->where = WHERE_SENDING;
    list_push(&xh->sending, r);
    r->attempts++;
    if (r->attempts == 1) r->first_attempt_ms = now_ms(xh);
    if (xh->ops->send(xh->ctx, r) < 0) {
        SY_LOG(xh->api, xh->inst, SY_LOG_ERROR,
               "Exporting failed. Dropping data. (%" PRIu64 " %s: the request could not be made)",
               r->items, syc_xh_item_name(r->signal));
        finish(xh, r, 0, r->items);
    }
}

static void arm_retry_timer(syc_xh_t *xh)
{
    if (!xh->timers_open) return;
    if (!xh->waiting.head) {
        uv_timer_stop(&xh->retry_timer);
        return;
    }
    uint64_t now = now_ms(xh), due = xh->waiting.head->due_ms;
    uv_timer_start(&xh->retry_timer, on_retry_due, due > now ? due - now : 0, 0);
}

/* Starts every request whose back-off is over. */
static void on_retry_due(uv_timer_t *t)
{
    syc_xh_t *xh = t->data;
    uint64_t now = now_ms(xh);
    while (xh->waiting.head && xh->waiting.head->due_ms <= now) {
        syc_xh_req_t *r = xh->waiting.head;
        leave_waiting(xh, r);
        start_attempt(xh, r);
    }
    arm_retry_timer(xh);
    check_drained(xh);
}

/* Puts `r` (out of its list) into `waiting`, kept sorted by due time. */
static void wait_until(syc_xh_t *xh, syc_xh_req_t *r, uint64_t due)
{
    r->where = WHERE_WAITING;
    r->due_ms = due;
    syc_xh_req_t *after = xh->waiting.tail;
    while (after && after->due_ms > due)
        after = after->prev;
    if (!after) {
        r->prev = NULL;
        r->next = xh->waiting.head;
        if (xh->waiting.head)
            xh->waiting.head->prev = r;
        else
            xh->waiting.tail = r;
        xh->waiting.head = r;
        xh->waiting.n++;
    } else if (after == xh->waiting.tail) {
        list_push(&xh->waiting, r);
    } else {
        r->prev = after;
        r->next = after->next;
        after->next->prev = r;
        after->next = r;
        xh->waiting.n++;
    }
    xh->retrying += req_size(xh, r);
    update_queue_gauge(xh);
    if (xh->waiting.head == r) arm_retry_timer(xh);
}

/* Starts queued requests while slots are free; tells the host there is room. */
static void dispatch(syc_xh_t *xh)
{
    if (xh->store) {
        stored_flush_pending(xh);
        /* Closing: what is not read yet stays for the next run. */
        while (!xh->closing && slots_used(xh) < xh->consumers && stored_dispatch_one(xh)) {
        }
        update_queue_gauge(xh);
        bool room = !xh->queue.n && stored_size(xh) < xh->capacity;
        if (xh->want_ready && room && !xh->closing) {
            xh->want_ready = false;
            xh->api->ready(xh->inst);
        }
        return;
    }
    bool freed = false;
    while (xh->queue.head && slots_used(xh) < xh->consumers) {
        syc_xh_req_t *r = xh->queue.head;
        list_remove(&xh->queue, r);
        unqueued(xh, r);
        freed = true;
        start_attempt(xh, r);
    }
    if (freed) update_queue_gauge(xh);
    /* Without a queue, room means a free slot; with one, room in the queue. */
    bool room = xh->capacity ? xh->queued < xh->capacity : slots_used(xh) < xh->consumers;
    if (xh->want_ready && room && !xh->closing) {
        xh->want_ready = false;
        xh->api->ready(xh->inst);
    }
}

/* The wait before the next retry, advancing the back-off interval: a random value in
 * [i*(1-f), i*(1+f)], then i = min(i*multiplier, max_interval), as the collector's
 * exponential back-off does. */
static uint64_t next_backoff_ms(syc_xh_t *xh, syc_xh_req_t *r)
{
    const syc_xh_config_t *c = xh->cfg;
    uint64_t max_ms = (uint64_t)(c->max_interval_ns / 1000000);
    if (r->interval_ms == 0) r->interval_ms = (uint64_t)(c->initial_interval_ns / 1000000);
    if (r->interval_ms == 0) r->interval_ms = 1;
    double i = (double)r->interval_ms;
    double f = c->randomization_factor;
    double wait = i - f * i + rand_unit(xh) * (2.0 * f * i);
    double next = i * c->multiplier;
    r->interval_ms = next > (double)max_ms ? max_ms : (uint64_t)next;
    return wait < 1.0 ? 1 : (uint64_t)wait;
}

void *syc_xh_req_ctx(const syc_xh_req_t *req)
{
    return req->owner->ctx;
}

static void stored_keep(syc_xh_t *xh, syc_xh_req_t *r);
static bool hand_over(syc_xh_t *xh, syc_xh_req_t *r);
static void reg_add(syc_xh_t *xh);

void syc_xh_attempt_done(syc_xh_req_t *r, const syc_xh_result_t *res)
{
    syc_xh_t *xh = r->owner;
    const syc_xh_config_t *c = xh->cfg;
    const char *what = syc_xh_item_name(r->signal);

    if (res->verdict == SYC_XH_SENT) {
        uint64_t rejected = res->rejected > r->items ? r->items : res->rejected;
        if (rejected || res->message[0])
            SY_LOG(xh->api, xh->inst, SY_LOG_WARN,
                   "Partial success response: %" PRIu64 " of %" PRIu64 " %s rejected: %s", rejected,
                   r->items, what, res->message[0] ? res->message : "(no message)");
        finish(xh, r, r->items - rejected, rejected);
    } else if (res->verdict == SYC_XH_PERMANENT) {
        SY_LOG(xh->api, xh->inst, SY_LOG_ERROR,
               "Exporting failed. The error is not retryable. Dropping data. "
               "(%s; dropped %" PRIu64 " %s)",
               res->message, r->items, what);
        finish(xh, r, 0, r->items);
    } else if (xh->closing && r->stored) {
        SY_LOG(xh->api, xh->inst, SY_LOG_INFO,
               "Exporting failed while shutting down: the request stays in the persistent "
               "queue for the next run. (%s; %" PRIu64 " %s)",
               res->message, r->items, what);
        stored_keep(xh, r);
    } else if (xh->closing && c->retry_enabled && hand_over(xh, r)) {
        /* Shutting down at a reload: the new instance retries it. */
    } else if (!c->retry_enabled || xh->closing) {
        SY_LOG(xh->api, xh->inst, SY_LOG_ERROR,
               "Exporting failed. Dropping data. (%s; %s; dropped %" PRIu64 " %s)", res->message,
               xh->closing ? "shutting down" : "retry_on_failure is disabled", r->items, what);
        finish(xh, r, 0, r->items);
    } else {
        uint64_t wait = next_backoff_ms(xh, r);
        if (res->retry_after_ms >= 0 && (uint64_t)res->retry_after_ms > wait)
            wait = (uint64_t)res->retry_after_ms;
        uint64_t now = now_ms(xh);
        uint64_t elapsed = now - r->first_attempt_ms;
        uint64_t max_elapsed = (uint64_t)(c->max_elapsed_ns / 1000000);
        if (max_elapsed && elapsed + wait > max_elapsed) {
            SY_LOG(xh->api, xh->inst, SY_LOG_ERROR,
                   "Exporting failed. No more retries left. Dropping data. (%s; %u attempts "
                   "in %" PRIu64 " ms; dropped %" PRIu64 " %s)",
                   res->message, r->attempts, elapsed, r->items, what);
            finish(xh, r, 0, r->items);
        } else {
            list_remove(&xh->sending, r);
            wait_until(xh, r, now + wait);
            if (xh->m_retries) xh->api->metric_add(xh->m_retries, 1);
            SY_LOG(xh->api, xh->inst, SY_LOG_INFO,
                   "Exporting failed. Will retry the request after interval. (%s; "
                   "interval %" PRIu64 " ms; %" PRIu64 " %s)",
                   res->message, wait, r->items, what);
        }
    }
    dispatch(xh);
    check_drained(xh);
}

/* ---- the queue ------------------------------------------------------------------ */

syc_xh_t *syc_xh_new(const sy_host_api_t *api, sy_instance_t *inst, const syc_xh_config_t *cfg,
                     const syc_xh_ops_t *ops, void *ctx, char *err, size_t err_len)
{
    syc_xh_t *xh = calloc(1, sizeof(*xh));
    if (!xh) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    xh->api = api;
    xh->inst = inst;
    xh->cfg = cfg;
    xh->ops = ops;
    xh->ctx = ctx;
    xh->loop = api->loop(inst);
    xh->capacity = cfg->queue_enabled ? (uint64_t)cfg->queue_size : 0;
    xh->consumers = cfg->queue_enabled ? (size_t)cfg->num_consumers : 1;
    xh->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)xh ^ 0x9e3779b97f4a7c15ull;
    if (!xh->rng) xh->rng = 1;
    xh->m_queue_size = api->metric_register(inst, "exporter_queue_size",
                                            "Requests (or items, or bytes: by the sizer) "
                                            "waiting to "
                                            "be sent: in the sending queue or backing off "
                                            "before a retry.",
                                            SY_METRIC_GAUGE);
    xh->m_queue_capacity = api->metric_register(inst, "exporter_queue_capacity",
                                                "Capacity of the sending queue.", SY_METRIC_GAUGE);
    if (xh->m_queue_capacity) api->metric_set(xh->m_queue_capacity, (int64_t)xh->capacity);
    static const char *const enq[3] = {"exporter_enqueue_failed_spans",
                                       "exporter_enqueue_failed_metric_points",
                                       "exporter_enqueue_failed_log_records"};
    static const sy_signal_t sigs[3] = {SY_SIGNAL_TRACES, SY_SIGNAL_METRICS, SY_SIGNAL_LOGS};
    for (int i = 0; i < 3; i++)
        if (api->signals(inst) & sigs[i])
            xh->m_enqueue_failed[i] =
                api->metric_register(inst, enq[i],
                                     "Items dropped because the sending queue was full "
                                     "(block_on_overflow: false).",
                                     SY_METRIC_COUNTER);
    if (cfg->storage && *cfg->storage) {
        xh->m_pq_records = api->metric_register(
            inst, "exporter_persistent_queue_records",
            "Requests in the persistent queue not yet confirmed (being sent included).",
            SY_METRIC_GAUGE);
        xh->m_pq_disk =
            api->metric_register(inst, "exporter_persistent_queue_disk_bytes",
                                 "Bytes of the persistent queue's segment files.", SY_METRIC_GAUGE);
        xh->m_pq_confirmed = api->metric_register(
            inst, "exporter_persistent_queue_confirmed_records",
            "Requests confirmed in the persistent queue: delivered, or failed for good.",
            SY_METRIC_COUNTER);
        xh->m_pq_corrupt = api->metric_register(
            inst, "exporter_persistent_queue_corrupt_records",
            "Records of the persistent queue skipped: bad checksum, or cut short by a crash.",
            SY_METRIC_COUNTER);
        xh->m_pq_recovered =
            api->metric_register(inst, "exporter_persistent_queue_recovered_records",
                                 "Requests left by a previous run, sent first.", SY_METRIC_COUNTER);
        xh->m_pq_redelivered = api->metric_register(
            inst, "exporter_persistent_queue_redelivered_records",
            "Of the recovered requests, those a previous run had sent without a confirmation: "
            "the backend may get them twice.",
            SY_METRIC_COUNTER);
    }
    xh->m_retries = api->metric_register(inst, "exporter_retries",
                                         "Export attempts that failed and were scheduled "
                                         "again.",
                                         SY_METRIC_COUNTER);
    xh->m_handed = api->metric_register(inst, "exporter_queue_handed_over_items",
                                        "Items still queued at a reload that this instance "
                                        "handed to its new instance instead of giving them up.",
                                        SY_METRIC_COUNTER);
    reg_add(xh);
    return xh;
}

static void count_drop(syc_xh_t *xh, sy_signal_t signal, uint64_t items)
{
    sy_metric_t *m = xh->m_enqueue_failed[signal_index(signal)];
    if (m) xh->api->metric_add(m, (int64_t)items);
    xh->api->exporter_outcome(xh->inst, signal, items, false);
    xh->drops_unlogged += items;
    uint64_t now = now_ms(xh);
    if (now - xh->drop_log_ms >= 1000 || xh->drop_log_ms == 0) {
        SY_LOG(xh->api, xh->inst, SY_LOG_WARN,
               "Dropping data because sending_queue is full (block_on_overflow: false): %" PRIu64
               " items dropped since the last message",
               xh->drops_unlogged);
        xh->drops_unlogged = 0;
        xh->drop_log_ms = now;
    }
}

/* Fills *info for `batch` and returns its size in units of the sizer. The bytes
 * sizer counts the serialized request, as the collector's does: a batch that only
 * has its decoded form is packed now (into its own arena, once: the transport
 * sends those bytes); one that cannot be packed counts as 0 bytes and fails when
 * it is sent. */
static uint64_t batch_size(syc_xh_t *xh, sy_batch_t *batch, sy_batch_info_t *info)
{
    xh->api->batch_info(batch, info);
    if (xh->cfg->sizer == SYC_XH_SIZER_BYTES && !info->has_encoded) {
        size_t len = 0;
        info->bytes = xh->api->batch_encoded(batch, &len) ? len : 0;
    }
    return sized(xh->cfg->sizer, info->items, info->bytes);
}

/* Queues one request for `batch` (the reference is the queue's). */
static int enqueue(syc_xh_t *xh, sy_batch_t *batch, const sy_batch_info_t *info, uint64_t size)
{
    syc_xh_req_t *r = calloc(1, sizeof(*r));
    if (!r) return SY_ENOMEM;
    r->batch = batch;
    r->signal = info->signal;
    r->items = info->items;
    r->bytes = info->bytes;
    r->owner = xh;
    r->where = WHERE_QUEUED;
    list_push(&xh->queue, r);
    xh->queued += size;
    xh->queued_bytes += r->bytes;
    update_queue_gauge(xh);
    return SY_OK;
}

static int stored_consume(syc_xh_t *xh, sy_batch_t *const *batches, size_t n);

int syc_xh_consume(syc_xh_t *xh, sy_batch_t *batch)
{
    if (xh->closing) return SY_ECLOSED;
    if (xh->store) return stored_consume(xh, &batch, 1);
    sy_batch_info_t info;
    uint64_t size = batch_size(xh, batch, &info);
    bool full;
    if (!xh->capacity)
        full = slots_used(xh) >= xh->consumers;
    else
        full = queue_full(xh, size, info.bytes);
    if (full) {
        if (xh->capacity && xh->cfg->block_on_overflow_set && !xh->cfg->block_on_overflow) {
            count_drop(xh, info.signal, info.items);
            xh->api->batch_release(batch);
            return SY_OK;
        }
        xh->want_ready = true;
        return SY_EAGAIN;
    }
    if (enqueue(xh, batch, &info, size) < 0) return SY_ENOMEM;
    dispatch(xh);
    return SY_OK;
}

int syc_xh_consume_all(syc_xh_t *xh, sy_batch_t *const *batches, size_t n)
{
    if (xh->closing) return SY_ECLOSED;
    if (xh->store) return stored_consume(xh, batches, n);
    uint64_t total = 0, total_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        sy_batch_info_t info;
        total += batch_size(xh, batches[i], &info);
        total_bytes += info.bytes;
    }
    /* As syc_xh_consume() judges one request, for all of them at once: they are
     * taken together or not at all. */
    bool full =
        !xh->capacity ? slots_used(xh) >= xh->consumers : queue_full(xh, total, total_bytes);
    if (full) {
        xh->want_ready = true;
        return SY_EAGAIN;
    }
    for (size_t i = 0; i < n; i++) {
        sy_batch_info_t info;
        uint64_t size = batch_size(xh, batches[i], &info);
        if (enqueue(xh, batches[i], &info, size) < 0) {
            /* Out of memory half way: those queued are sent, the rest given up. */
            for (size_t j = i; j < n; j++) {
                xh->api->batch_info(batches[j], &info);
                count_drop(xh, info.signal, info.items);
                xh->api->batch_release(batches[j]);
            }
            break;
        }
    }
    dispatch(xh);
    return SY_OK;
}

/* ---- the persistent queue ------------------------------------------------------ */

/* What the storage holds unconfirmed, over all signals, in units of the sizer. */
static uint64_t stored_size(syc_xh_t *xh)
{
    uint64_t total = 0;
    for (int i = 0; i < SYC_SIGNAL_COUNT; i++) {
        if (!xh->sq[i]) continue;
        sy_storage_stats_t st;
        xh->store->stats(xh->sq[i], &st);
        total += xh->cfg->sizer == SYC_XH_SIZER_REQUESTS
                     ? st.records
                     : sized(xh->cfg->sizer, st.weight, st.bytes);
    }
    return total;
}

/* Copies the storage's figures into the metrics (counters by their growth). */
static void stored_metrics(syc_xh_t *xh)
{
    sy_storage_stats_t sum = {0};
    for (int i = 0; i < SYC_SIGNAL_COUNT; i++) {
        if (!xh->sq[i]) continue;
        sy_storage_stats_t st;
        xh->store->stats(xh->sq[i], &st);
        sum.records += st.records;
        sum.disk_bytes += st.disk_bytes;
        sum.confirmed += st.confirmed;
        sum.corrupt += st.corrupt;
        sum.recovered += st.recovered;
        sum.redelivered += st.redelivered;
    }
    const sy_host_api_t *api = xh->api;
    if (xh->m_pq_records) api->metric_set(xh->m_pq_records, (int64_t)sum.records);
    if (xh->m_pq_disk) api->metric_set(xh->m_pq_disk, (int64_t)sum.disk_bytes);
    struct {
        sy_metric_t *m;
        uint64_t now, *was;
    } c[] = {{xh->m_pq_confirmed, sum.confirmed, &xh->seen.confirmed},
             {xh->m_pq_corrupt, sum.corrupt, &xh->seen.corrupt},
             {xh->m_pq_recovered, sum.recovered, &xh->seen.recovered},
             {xh->m_pq_redelivered, sum.redelivered, &xh->seen.redelivered}};
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        if (c[i].m && c[i].now > *c[i].was)
            api->metric_add(c[i].m, (int64_t)(c[i].now - *c[i].was));
        *c[i].was = c[i].now;
    }
    update_queue_gauge(xh);
}

/* Opens the storage extension's queues for the instance's signals. */
static int stored_open(syc_xh_t *xh)
{
    const char *id = xh->cfg->storage;
    if (SY_API_HAS(xh->api, extension_get))
        xh->store = xh->api->extension_get(xh->inst, id, SY_STORAGE_QUEUE);
    if (!xh->store || !xh->store->open) {
        xh->store = NULL;
        xh->api->log(xh->inst, SY_LOG_ERROR,
                     "'sending_queue.storage': storage \"%s\" not found (it must be a storage "
                     "extension such as file_storage, listed in service.extensions)",
                     id);
        return SY_EINVAL;
    }
    uint32_t signals = xh->api->signals(xh->inst);
    for (int i = 0; i < SYC_SIGNAL_COUNT; i++) {
        const syc_signal_info_t *si = syc_signal_by_index(i);
        if (!(signals & si->signal)) continue;
        char err[512];
        int rc = xh->store->open(xh->store->ctx, xh->api->instance_id(xh->inst), si->name,
                                 &xh->sq[i], err, sizeof(err));
        if (rc < 0) {
            xh->sq[i] = NULL;
            xh->api->log(xh->inst, SY_LOG_ERROR,
                         "'sending_queue.storage': cannot open the %s queue in \"%s\": %s",
                         si->name, id, err);
            stored_close(xh);
            return SY_EINVAL;
        }
    }
    stored_metrics(xh);
    return SY_OK;
}

static void stored_close(syc_xh_t *xh)
{
    if (!xh->store) return;
    for (int i = 0; i < SYC_SIGNAL_COUNT; i++)
        if (xh->sq[i]) {
            xh->store->close(xh->sq[i]);
            xh->sq[i] = NULL;
        }
    xh->store = NULL;
}

/* Writes one batch to its signal's queue. SY_OK: written, or given up (counted)
 * when it can never be; SY_EAGAIN: no room on the disk, or an I/O error, nothing
 * written (the room timer tries again). */
static int stored_append(syc_xh_t *xh, sy_batch_t *batch, const sy_batch_info_t *info)
{
    sy_storage_queue_t *q = xh->sq[signal_index(info->signal)];
    size_t len = 0;
    const uint8_t *data = q ? xh->api->batch_encoded(batch, &len) : NULL;
    int rc = data ? xh->store->append(q, data, len, info->items, &(uint64_t){0}) : SY_EINVAL;
    if (rc == SY_EINVAL) {
        SY_LOG(xh->api, xh->inst, SY_LOG_ERROR,
               "Exporting failed. Dropping data. (%" PRIu64 " %s: the request %s)", info->items,
               syc_xh_item_name(info->signal),
               q ? "cannot be encoded or is too large for the persistent queue"
                 : "is of a signal whose persistent queue is not open");
        xh->api->exporter_outcome(xh->inst, info->signal, info->items, false);
        return SY_OK;
    }
    if (rc < 0) {
        if (xh->timers_open && !uv_is_active((uv_handle_t *)&xh->room_timer))
            uv_timer_start(&xh->room_timer, on_room, 1000, 0);
        return SY_EAGAIN;
    }
    return SY_OK;
}

/* Appends the batches that syc_xh_consume_all() could not write at once. */
static void stored_flush_pending(syc_xh_t *xh)
{
    while (xh->queue.head) {
        syc_xh_req_t *r = xh->queue.head;
        sy_batch_info_t info = {.signal = r->signal, .items = r->items, .bytes = r->bytes};
        if (stored_append(xh, r->batch, &info) != SY_OK) {
            if (!xh->closing) return;
            /* Shutting down with a disk still full: given up, counted. */
            list_remove(&xh->queue, r);
            unqueued(xh, r);
            count_drop(xh, r->signal, r->items);
        } else {
            list_remove(&xh->queue, r);
            unqueued(xh, r);
        }
        xh->ops->req_free(xh->ctx, r);
        xh->api->batch_release(r->batch);
        free(r);
    }
}

static int stored_consume(syc_xh_t *xh, sy_batch_t *const *batches, size_t n)
{
    uint64_t total = 0;
    sy_batch_info_t info;
    for (size_t i = 0; i < n; i++)
        total += batch_size(xh, batches[i], &info);
    uint64_t used = stored_size(xh) + xh->queued;
    /* As the in-memory queue judges it; batches that wait for the disk come first. */
    if (xh->queue.n || (used && used + total > xh->capacity)) {
        if (n == 1 && !xh->queue.n && xh->cfg->block_on_overflow_set &&
            !xh->cfg->block_on_overflow) {
            count_drop(xh, info.signal, info.items);
            xh->api->batch_release(batches[0]);
            return SY_OK;
        }
        xh->want_ready = true;
        return SY_EAGAIN;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t size = batch_size(xh, batches[i], &info);
        int rc = xh->queue.n ? SY_EAGAIN : stored_append(xh, batches[i], &info);
        if (rc == SY_EAGAIN && i == 0) {
            xh->want_ready = true;
            return SY_EAGAIN; /* nothing taken */
        }
        if (rc == SY_EAGAIN) {
            /* Half way: the rest is taken too, and waits in memory for the disk. */
            if (enqueue(xh, batches[i], &info, size) < 0) {
                count_drop(xh, info.signal, info.items);
                xh->api->batch_release(batches[i]);
            }
            continue;
        }
        xh->api->batch_release(batches[i]);
    }
    /* Sending starts on the next turn of the loop (room_timer, at 0): returning
     * now settles the batches, and their clients are answered without waiting
     * for a record to be read back and handed to the transport. */
    if (xh->timers_open) {
        uv_timer_start(&xh->room_timer, on_room, 0, 0);
        return SY_OK;
    }
    dispatch(xh);
    stored_metrics(xh);
    return SY_OK;
}

/* The batch a record is read into: made on the first allocation. */
typedef struct stored_load_s {
    syc_xh_t *xh;
    sy_signal_t signal;
    sy_batch_t *batch;
} stored_load_t;

static void *stored_alloc(void *arg, size_t len)
{
    stored_load_t *ld = arg;
    if (!ld->batch) ld->batch = ld->xh->api->batch_new(ld->xh->inst, ld->signal);
    return ld->batch ? ld->xh->api->batch_alloc(ld->batch, len) : NULL;
}

/* Reads the next record (round robin over the signals) and starts sending it.
 * False when there is none (or memory ran out: the room timer tries again). */
static bool stored_dispatch_one(syc_xh_t *xh)
{
    for (int k = 0; k < SYC_SIGNAL_COUNT; k++) {
        int i = (xh->rr + k) % SYC_SIGNAL_COUNT;
        if (!xh->sq[i]) continue;
        stored_load_t ld = {.xh = xh, .signal = syc_signal_by_index(i)->signal};
        sy_storage_record_t rec;
        int rc = xh->store->next(xh->sq[i], stored_alloc, &ld, &rec);
        if (rc < 0) {
            if (ld.batch) xh->api->batch_release(ld.batch);
            if (rc == SY_EAGAIN) continue;
            if (xh->timers_open) uv_timer_start(&xh->room_timer, on_room, 1000, 0);
            return false;
        }
        xh->rr = i + 1;
        char err[256];
        syc_xh_req_t *r = calloc(1, sizeof(*r));
        if (!r || xh->api->batch_set_encoded(ld.batch, rec.data, rec.len, err, sizeof(err)) < 0) {
            /* Its checksum matched, so it is what was written: a request this build
             * cannot take (or no memory), given up for good. */
            if (r) {
                SY_LOG(xh->api, xh->inst, SY_LOG_ERROR,
                       "Exporting failed. Dropping data. (record %" PRIu64
                       " of the persistent queue does not decode: %s; %" PRIu64 " %s)",
                       rec.id, err, rec.weight, syc_xh_item_name(ld.signal));
                xh->store->confirm(xh->sq[i], rec.id);
                xh->api->exporter_outcome(xh->inst, ld.signal, rec.weight, false);
                free(r);
            }
            xh->api->batch_release(ld.batch);
            if (!r) return false;
            return true;
        }
        sy_batch_info_t info;
        xh->api->batch_info(ld.batch, &info);
        r->batch = ld.batch;
        r->signal = ld.signal;
        r->items = info.items;
        r->bytes = info.bytes;
        r->owner = xh;
        r->stored = true;
        r->record_id = rec.id;
        start_attempt(xh, r);
        return true;
    }
    return false;
}

/* Delivered or failed for good: never sent again. */
static void stored_confirm(syc_xh_t *xh, syc_xh_req_t *r)
{
    sy_storage_queue_t *q = xh->sq[signal_index(r->signal)];
    if (q) xh->store->confirm(q, r->record_id);
    stored_metrics(xh);
}

/* Lets go of a request read from the storage without confirming it: the next run
 * sends it again. */
static void stored_keep(syc_xh_t *xh, syc_xh_req_t *r)
{
    if (r->where == WHERE_WAITING)
        leave_waiting(xh, r);
    else
        list_remove(list_of(xh, r), r);
    xh->ops->req_free(xh->ctx, r);
    xh->api->batch_release(r->batch);
    free(r);
    xh->kept++;
}

/* The room timer: the first dispatch, and appends or reads tried again. */
static void on_room(uv_timer_t *t)
{
    syc_xh_t *xh = t->data;
    if (xh->closing || !xh->store) return;
    dispatch(xh);
    stored_metrics(xh);
    /* Still refused by the disk: let the host offer its batch again anyway, so
     * that a disk that has room again is noticed without a confirmation. */
    if (xh->want_ready && !xh->queue.n) {
        xh->want_ready = false;
        xh->api->ready(xh->inst);
    }
}

/* ---- handover at a reload ------------------------------------------------------------ */

/*
 * A reload that changes an exporter's configuration makes its new instance (same
 * id, same plugin) beside the old one before the old one drains (core/reload.c).
 * Every helper of this plugin is listed in a registry: sy_common is linked into
 * each plugin .so, so the registry only ever holds helpers of one component type,
 * keyed by instance id and ranked by the order they were made in. When a helper
 * with its queue in memory shuts down, it hands to the newest helper of the same
 * id made after it (its successor):
 *   - at once, every request not in flight: queued, or backing off before a retry;
 *   - a request in flight whose attempt then fails in a way that would be retried;
 *   - at the deadline, a request still in flight, after aborting it (the backend
 *     may have had it already: the one case where a reload may duplicate).
 * A request handed over keeps its batch (the reference moves); the successor
 * queues it in front of anything new, above its queue_size if need be, once it
 * has started (uv_async: the two run on different workers). The old one counts
 * them in exporter_queue_handed_over_items, the new one reports their outcome.
 * Nothing is handed over from or to a persistent queue (what is not confirmed
 * stays on disk for the next instance anyway), by or to a helper that is one of
 * several of its instance (loadbalancing: one per backend), or of a signal the
 * successor does not export: those drain until the deadline as before.
 */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static syc_xh_t *reg_head;
static uint64_t reg_last_seq;

static size_t reg_count_inst_locked(const sy_instance_t *inst)
{
    size_t n = 0;
    for (const syc_xh_t *e = reg_head; e; e = e->reg_next)
        n += e->inst == inst;
    return n;
}

static void reg_add(syc_xh_t *xh)
{
    /* Without an id (a host table without instance_id) there is no handover. */
    const char *id = xh->api->instance_id ? xh->api->instance_id(xh->inst) : NULL;
    xh->reg_id = id ? strdup(id) : NULL;
    xh->reg_signals = xh->api->signals(xh->inst);
    pthread_mutex_lock(&reg_mu);
    xh->reg_seq = ++reg_last_seq;
    xh->accepting = xh->reg_id && !(xh->cfg->storage && *xh->cfg->storage);
    xh->reg_next = reg_head;
    reg_head = xh;
    pthread_mutex_unlock(&reg_mu);
}

/* Takes what was handed over so far (the caller owns the array). */
static sy_batch_t **inbox_take(syc_xh_t *xh, size_t *n)
{
    pthread_mutex_lock(&reg_mu);
    sy_batch_t **got = xh->inbox;
    *n = xh->inbox_n;
    xh->inbox = NULL;
    xh->inbox_n = xh->inbox_cap = 0;
    pthread_mutex_unlock(&reg_mu);
    return got;
}

/* Leaves the registry; a handover that never got queued is released and counted
 * as failed (a successor that never started). */
static void reg_remove(syc_xh_t *xh)
{
    pthread_mutex_lock(&reg_mu);
    for (syc_xh_t **pp = &reg_head; *pp; pp = &(*pp)->reg_next)
        if (*pp == xh) {
            *pp = xh->reg_next;
            break;
        }
    xh->accepting = false;
    pthread_mutex_unlock(&reg_mu);
    size_t n;
    sy_batch_t **got = inbox_take(xh, &n);
    for (size_t i = 0; i < n; i++) {
        sy_batch_info_t info;
        xh->api->batch_info(got[i], &info);
        xh->api->exporter_outcome(xh->inst, info.signal, info.items, false);
        xh->api->batch_release(got[i]);
    }
    if (n)
        SY_LOG(xh->api, xh->inst, SY_LOG_ERROR,
               "%zu requests handed over by the previous instance were never sent (this one "
               "did not start): counted as failed",
               n);
    free(got);
    free(xh->reg_id);
    xh->reg_id = NULL;
}

static syc_xh_t *successor_locked(const syc_xh_t *xh, sy_signal_t signal)
{
    if (!xh->reg_id || xh->store || reg_count_inst_locked(xh->inst) != 1) return NULL;
    syc_xh_t *best = NULL;
    for (syc_xh_t *e = reg_head; e; e = e->reg_next)
        if (e != xh && e->accepting && e->reg_seq > xh->reg_seq && !strcmp(e->reg_id, xh->reg_id) &&
            (!best || e->reg_seq > best->reg_seq))
            best = e;
    if (!best || !(best->reg_signals & signal) || reg_count_inst_locked(best->inst) != 1)
        return NULL;
    return best;
}

/* Hands `r` (in any of the lists, not in flight any more) to the successor.
 * Returns true when it did (r is freed), false when there is none. */
static bool hand_over(syc_xh_t *xh, syc_xh_req_t *r)
{
    if (r->stored) return false;
    pthread_mutex_lock(&reg_mu);
    syc_xh_t *s = successor_locked(xh, r->signal);
    if (s && s->inbox_n == s->inbox_cap) {
        size_t cap = s->inbox_cap ? 2 * s->inbox_cap : 64;
        sy_batch_t **grown = realloc(s->inbox, cap * sizeof(*grown));
        if (grown) {
            s->inbox = grown;
            s->inbox_cap = cap;
        } else {
            s = NULL;
        }
    }
    if (!s) {
        pthread_mutex_unlock(&reg_mu);
        return false;
    }
    s->inbox[s->inbox_n++] = r->batch;
    if (s->async_open) uv_async_send(&s->inbox_async);
    pthread_mutex_unlock(&reg_mu);
    if (r->where == WHERE_WAITING) {
        leave_waiting(xh, r);
    } else {
        list_remove(list_of(xh, r), r);
        if (r->where == WHERE_QUEUED) {
            unqueued(xh, r);
            update_queue_gauge(xh);
        }
    }
    xh->handed_items += r->items;
    xh->handed_reqs++;
    if (xh->m_handed) xh->api->metric_add(xh->m_handed, (int64_t)r->items);
    xh->ops->req_free(xh->ctx, r);
    free(r);
    return true;
}

/* Hands every request that is not in flight to the successor (shutdown). */
static void hand_over_idle(syc_xh_t *xh)
{
    req_list_t *lists[2] = {&xh->waiting, &xh->queue};
    for (int i = 0; i < 2; i++)
        for (syc_xh_req_t *r = lists[i]->head, *next; r; r = next) {
            next = r->next;
            (void)hand_over(xh, r);
        }
}

/* The successor's side, on its loop: queues what was handed over. */
static void adopt_inbox(syc_xh_t *xh)
{
    size_t n;
    sy_batch_t **got = inbox_take(xh, &n);
    uint64_t items = 0;
    for (size_t i = 0; i < n; i++) {
        sy_batch_info_t info;
        uint64_t size = batch_size(xh, got[i], &info);
        items += info.items;
        if (enqueue(xh, got[i], &info, size) < 0) {
            xh->api->exporter_outcome(xh->inst, info.signal, info.items, false);
            xh->api->batch_release(got[i]);
        }
    }
    free(got);
    if (!n) return;
    SY_LOG(xh->api, xh->inst, SY_LOG_INFO,
           "Reload: took over %zu requests (%" PRIu64 " items) from the sending queue of the "
           "previous instance of this exporter",
           n, items);
    dispatch(xh);
}

static void on_inbox(uv_async_t *a)
{
    adopt_inbox(a->data);
}

/* ---- start and shutdown -------------------------------------------------------------- */

int syc_xh_start(syc_xh_t *xh)
{
    if (xh->cfg->storage && *xh->cfg->storage && stored_open(xh) < 0) return SY_EINVAL;
    /* consume() takes a batch only once it is written: receivers may answer then. */
    if (xh->store && SY_API_HAS(xh->api, settle_durable)) xh->api->settle_durable(xh->inst);
    if (uv_timer_init(xh->loop, &xh->retry_timer) != 0) {
        stored_close(xh);
        return SY_ERROR;
    }
    if (uv_timer_init(xh->loop, &xh->deadline_timer) != 0) {
        uv_close((uv_handle_t *)&xh->retry_timer, NULL);
        stored_close(xh);
        return SY_ERROR;
    }
    if (uv_timer_init(xh->loop, &xh->room_timer) != 0) {
        uv_close((uv_handle_t *)&xh->retry_timer, NULL);
        uv_close((uv_handle_t *)&xh->deadline_timer, NULL);
        stored_close(xh);
        return SY_ERROR;
    }
    xh->retry_timer.data = xh->deadline_timer.data = xh->room_timer.data = xh;
    xh->timers_open = true;
    if (uv_async_init(xh->loop, &xh->inbox_async, on_inbox) == 0) {
        xh->inbox_async.data = xh;
        pthread_mutex_lock(&reg_mu);
        xh->async_open = true;
        /* Handed over before start: queued on the next turn of the loop, once the
         * transport has opened its handles. */
        if (xh->inbox_n) uv_async_send(&xh->inbox_async);
        pthread_mutex_unlock(&reg_mu);
    }
    /* Records left by a previous run go first, once the transport is up. */
    if (xh->store) uv_timer_start(&xh->room_timer, on_room, 0, 0);
    return SY_OK;
}

static void check_drained(syc_xh_t *xh)
{
    if (!xh->closing || !xh->drained || xh->queue.n || slots_used(xh)) return;
    if (xh->timers_open) {
        /* The struct outlives the close callbacks: it is freed in destroy(), after the
         * host has run the loop until every handle is closed. */
        uv_close((uv_handle_t *)&xh->retry_timer, NULL);
        uv_close((uv_handle_t *)&xh->deadline_timer, NULL);
        uv_close((uv_handle_t *)&xh->room_timer, NULL);
        xh->timers_open = false;
        pthread_mutex_lock(&reg_mu);
        bool async = xh->async_open;
        xh->async_open = false;
        pthread_mutex_unlock(&reg_mu);
        if (async) uv_close((uv_handle_t *)&xh->inbox_async, NULL);
    }
    if (xh->handed_reqs)
        SY_LOG(xh->api, xh->inst, SY_LOG_INFO,
               "Reload: handed %" PRIu64 " requests (%" PRIu64 " items) still queued or "
               "failed to the new instance of this exporter",
               xh->handed_reqs, xh->handed_items);
    xh->handed_reqs = xh->handed_items = 0;
    if (xh->kept)
        SY_LOG(xh->api, xh->inst, SY_LOG_INFO,
               "%" PRIu64 " requests stay in the persistent queue for the next run", xh->kept);
    xh->kept = 0;
    stored_close(xh);
    void (*drained)(void *) = xh->drained;
    xh->drained = NULL;
    drained(xh->drained_arg);
}

/* Gives up whatever is left: aborts attempts, counts everything as failed. Returns
 * the items given up. */
static uint64_t give_up_all(syc_xh_t *xh)
{
    uint64_t lost = 0;
    req_list_t *lists[3] = {&xh->sending, &xh->waiting, &xh->queue};
    for (int i = 0; i < 3; i++)
        while (lists[i]->head) {
            syc_xh_req_t *r = lists[i]->head;
            if (r->where == WHERE_SENDING) xh->ops->abort(xh->ctx, r);
            if (r->stored) {
                stored_keep(xh, r);
                continue;
            }
            if (xh->closing && hand_over(xh, r)) continue;
            lost += r->items;
            finish(xh, r, 0, r->items);
        }
    xh->queued = 0;
    xh->queued_bytes = 0;
    update_queue_gauge(xh);
    return lost;
}

static void on_deadline(uv_timer_t *t)
{
    syc_xh_t *xh = t->data;
    uint64_t lost = give_up_all(xh);
    if (lost)
        SY_LOG(xh->api, xh->inst, SY_LOG_ERROR,
               "Shutdown deadline passed: %" PRIu64 " items still queued or in flight are "
               "counted as failed (no new instance of this exporter took them over: it "
               "was removed from the configuration, or the router is stopping)",
               lost);
    check_drained(xh);
}

void syc_xh_shutdown(syc_xh_t *xh, uint64_t deadline_ms, void (*drained)(void *arg), void *arg)
{
    xh->closing = true;
    xh->drained = drained;
    xh->drained_arg = arg;
    pthread_mutex_lock(&reg_mu);
    xh->accepting = false;
    pthread_mutex_unlock(&reg_mu);
    if (xh->timers_open) adopt_inbox(xh); /* a late handover (else: reg_remove) */
    if (!xh->store) hand_over_idle(xh);
    if (xh->store) {
        /* Batches still waiting for the disk get one last try; those it refuses
         * are given up below (counted as failed). */
        stored_flush_pending(xh);
        if (xh->timers_open) uv_timer_stop(&xh->room_timer);
    }
    if (!xh->timers_open) {
        /* Never started: nothing was ever sent. */
        give_up_all(xh);
        check_drained(xh);
        return;
    }
    /* Requests backing off get one last attempt now rather than after their wait. */
    while (xh->waiting.head) {
        syc_xh_req_t *r = xh->waiting.head;
        leave_waiting(xh, r);
        start_attempt(xh, r);
    }
    uv_timer_stop(&xh->retry_timer);
    if (xh->queue.n || slots_used(xh))
        uv_timer_start(&xh->deadline_timer, on_deadline, deadline_ms, 0);
    check_drained(xh);
}

void syc_xh_free(syc_xh_t *xh)
{
    if (!xh) return;
    /* Normally empty by now (drained); anything left is released and counted as
     * failed, so that nothing leaks. */
    give_up_all(xh);
    reg_remove(xh);
    stored_close(xh);
    free(xh);
}

/* ---- compression ------------------------------------------------------------------ */

static syc_encoding_t xh_encoding(int compression)
{
    switch (compression) {
    case SYC_XH_COMPRESS_GZIP:
        return SYC_ENCODING_GZIP;
    case SYC_XH_COMPRESS_ZSTD:
        return SYC_ENCODING_ZSTD;
    case SYC_XH_COMPRESS_SNAPPY:
        return SYC_ENCODING_SNAPPY;
    case SYC_XH_COMPRESS_DEFLATE:
    case SYC_XH_COMPRESS_ZLIB:
        return SYC_ENCODING_DEFLATE;
    default:
        return SYC_ENCODING_IDENTITY;
    }
}

const char *syc_xh_compression_name(int compression)
{
    if (compression < 0 || compression > SYC_XH_COMPRESS_ZLIB) return "none";
    return syc_xh_compression_names[compression];
}

int syc_xh_compression_check(int compression, int64_t level, char *err, size_t err_len)
{
    if (compression == SYC_XH_COMPRESS_NONE) return SY_OK;
    if (level < INT32_MIN || level > INT32_MAX) level = INT32_MAX;
    return syc_compress_level_check(xh_encoding(compression), (int)level, err, err_len);
}

int syc_xh_compress(int compression, int level, size_t prefix, const uint8_t *in, size_t len,
                    uint8_t **out, size_t *out_len)
{
    if (len > UINT32_MAX) return SY_ENOMEM;
    syc_encoding_t enc = xh_encoding(compression);
    if (enc == SYC_ENCODING_IDENTITY) return SY_EINVAL;
    return syc_compress(enc, level, prefix, in, len, out, out_len);
}

/* ---- responses ---------------------------------------------------------------------- */

/* An allocator for the JSON decoder that remembers every block, so that one call
 * frees them all (the decoder never frees piecewise). Bounded to 8 MiB in all. */
typedef struct track_s {
    void *blocks;
    size_t total;
} track_t;

static void *track_alloc(void *data, size_t size)
{
    track_t *t = data;
    if (size > (8u << 20) || t->total + size > (8u << 20)) return NULL;
    void **b = malloc(16 + size);
    if (!b) return NULL;
    *b = t->blocks;
    t->blocks = b;
    t->total += size;
    return (uint8_t *)b + 16;
}

static void track_free_one(void *data, void *ptr)
{
    (void)data;
    (void)ptr; /* everything goes at once in track_free_all() */
}

static void track_free_all(track_t *t)
{
    while (t->blocks) {
        void **b = t->blocks;
        t->blocks = *b;
        free(b);
    }
}

/* Decodes `body` as message `desc` (protobuf or OTLP/JSON) with the tracking
 * allocator. NULL if it does not decode. */
static ProtobufCMessage *decode_any(const ProtobufCMessageDescriptor *desc, const uint8_t *body,
                                    size_t len, bool json, track_t *t)
{
    ProtobufCAllocator a = {.alloc = track_alloc, .free = track_free_one, .allocator_data = t};
    if (!json) return protobuf_c_message_unpack(desc, &a, len, body);
    char err[64];
    return syc_otlp_json_decode(desc, body, len, &a, err, sizeof(err));
}

static void copy_message(char *msg, size_t msg_len, const char *s)
{
    if (!msg_len) return;
    snprintf(msg, msg_len, "%s", s ? s : "");
}

int syc_xh_partial_success(sy_signal_t signal, const uint8_t *body, size_t len, bool json,
                           uint64_t *rejected, char *msg, size_t msg_len)
{
    *rejected = 0;
    copy_message(msg, msg_len, "");
    if (len == 0) return SY_OK;
    const ProtobufCMessageDescriptor *desc =
        signal == SY_SIGNAL_TRACES
            ? &opentelemetry__proto__collector__trace__v1__export_trace_service_response__descriptor
        : signal == SY_SIGNAL_METRICS
            ? &opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__descriptor
            : &opentelemetry__proto__collector__logs__v1__export_logs_service_response__descriptor;
    track_t t = {0};
    ProtobufCMessage *m = decode_any(desc, body, len, json, &t);
    if (!m) {
        track_free_all(&t);
        return SY_EINVAL;
    }
    if (signal == SY_SIGNAL_TRACES) {
        Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *r = (void *)m;
        if (r->partial_success) {
            *rejected = (uint64_t)r->partial_success->rejected_spans;
            copy_message(msg, msg_len, r->partial_success->error_message);
        }
    } else if (signal == SY_SIGNAL_METRICS) {
        Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse *r = (void *)m;
        if (r->partial_success) {
            *rejected = (uint64_t)r->partial_success->rejected_data_points;
            copy_message(msg, msg_len, r->partial_success->error_message);
        }
    } else {
        Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse *r = (void *)m;
        if (r->partial_success) {
            *rejected = (uint64_t)r->partial_success->rejected_log_records;
            copy_message(msg, msg_len, r->partial_success->error_message);
        }
    }
    track_free_all(&t);
    return SY_OK;
}

/* The body's first bytes with anything unprintable replaced, for a log line. */
static void printable(const uint8_t *body, size_t len, char *msg, size_t msg_len)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < msg_len && n < 200; i++)
        msg[n++] = body[i] >= 0x20 && body[i] < 0x7f ? (char)body[i] : '.';
    msg[n] = '\0';
}

void syc_xh_rpc_status(const uint8_t *body, size_t len, bool json, char *msg, size_t msg_len)
{
    copy_message(msg, msg_len, "");
    if (!len) return;
    track_t t = {0};
    Google__Rpc__Status *st =
        (void *)decode_any(&google__rpc__status__descriptor, body, len, json, &t);
    if (!st || !st->message || !*st->message)
        printable(body, len, msg, msg_len);
    else
        copy_message(msg, msg_len, st->message);
    track_free_all(&t);
}
