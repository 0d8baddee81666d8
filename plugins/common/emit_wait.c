/*
 * emit_wait.c - parks requests while a pipeline's queue is full (see emit_wait.h).
 *
 * One list, oldest first, and one 1 ms timer while anything is parked. A tick
 * emits the parked requests in order; the first refusal of a signal ends that
 * signal's turn for the tick (its queue is still full: the requests behind it
 * would be refused too, and must not pass it), the other signals go on. A
 * request past its deadline, or refused by a processor on purpose, is answered
 * with the refusal.
 */
#include "emit_wait.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

struct syc_emit_park_s {
    syc_emit_park_t *prev, *next;
    syc_emit_req_t req;
    sy_signal_t signal;
    uint64_t deadline_ms;
    syc_emit_done_fn done;
};

static void unlink_park(syc_emit_wait_t *w, syc_emit_park_t *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        w->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        w->tail = p->prev;
    w->parked--;
}

/* Whether the host says the refusal of `signal` is a full queue (ABI 1.8). */
static bool may_wait(const syc_emit_wait_t *w, sy_signal_t signal)
{
    return SY_API_HAS(w->api, emit_may_wait) && w->api->emit_may_wait &&
           w->api->emit_may_wait(w->inst, signal);
}

static bool signal_parked(const syc_emit_wait_t *w, sy_signal_t signal)
{
    for (const syc_emit_park_t *p = w->head; p; p = p->next)
        if (p->signal == signal) return true;
    return false;
}

/* Answers p (unlinked first) with rc and frees it. */
static void finish(syc_emit_wait_t *w, syc_emit_park_t *p, int rc)
{
    unlink_park(w, p);
    syc_emit_done_fn done = p->done;
    syc_emit_req_t req = p->req;
    if (rc == SY_EAGAIN && w->m_expired) w->api->metric_add(w->m_expired, 1);
    free(p);
    done(&req, rc);
}

static void on_tick(uv_timer_t *t)
{
    syc_emit_wait_t *w = t->data;
    uint64_t now = uv_now(t->loop);
    unsigned blocked = 0; /* signals whose queue refused this tick */
    syc_emit_park_t *p = w->head;
    while (p) {
        syc_emit_park_t *next = p->next;
        unsigned bit = 1u << ((unsigned)p->signal & 31u);
        if (!(blocked & bit)) {
            int rc = w->api->emit(w->inst, p->req.batch);
            if (rc != SY_EAGAIN || !may_wait(w, p->signal)) {
                /* done() may cancel or park others: start again from the head
                 * rather than trust `next`. */
                finish(w, p, rc);
                p = w->head; /* the signals refused this tick stay refused */
                continue;
            }
            blocked |= bit;
        }
        if (now >= p->deadline_ms) {
            finish(w, p, SY_EAGAIN);
            p = w->head;
            continue;
        }
        p = next;
    }
    if (!w->head) uv_timer_stop(t);
}

void syc_emit_wait_metrics(const sy_host_api_t *api, sy_instance_t *inst, const char *prefix,
                           const char *what, sy_metric_t **m_parked, sy_metric_t **m_expired)
{
    char name[128], help[300];
    snprintf(name, sizeof(name), "%s_queue_waits", prefix);
    snprintf(help, sizeof(help),
             "%s held, already read, because the queue of a pipeline they feed was full "
             "(queue_wait).",
             what);
    help[0] = (char)toupper((unsigned char)help[0]);
    *m_parked = api->metric_register(inst, name, help, SY_METRIC_COUNTER);
    snprintf(name, sizeof(name), "%s_queue_wait_expired", prefix);
    snprintf(help, sizeof(help),
             "Held %s whose queue had no room within queue_wait: the client was told to retry "
             "(HTTP 429 / RESOURCE_EXHAUSTED).",
             what);
    *m_expired = api->metric_register(inst, name, help, SY_METRIC_COUNTER);
}

void syc_emit_wait_init(syc_emit_wait_t *w, const sy_host_api_t *api, sy_instance_t *inst,
                        int64_t max_ns, sy_metric_t *m_parked, sy_metric_t *m_expired)
{
    *w = (syc_emit_wait_t){.api = api, .inst = inst, .m_parked = m_parked, .m_expired = m_expired};
    if (max_ns > 0) {
        w->max_ms = (uint64_t)max_ns / 1000000u;
        if (w->max_ms == 0) w->max_ms = 1;
    }
}

/* The timer, made at the first park; NULL when it cannot be (then: refuse). */
static uv_timer_t *timer_of(syc_emit_wait_t *w)
{
    if (w->timer) return (uv_timer_t *)w->timer;
    uv_timer_t *t = malloc(sizeof(*t));
    if (!t) return NULL;
    if (uv_timer_init(w->api->loop(w->inst), t) != 0) {
        free(t);
        return NULL;
    }
    t->data = w;
    w->timer = (struct uv_timer_s *)t;
    return t;
}

int syc_emit(syc_emit_wait_t *w, const syc_emit_req_t *req, syc_emit_done_fn done,
             syc_emit_park_t **park)
{
    sy_batch_t *batch = req->batch;
    *park = NULL;
    if (w->max_ms == 0 || w->closed) return w->api->emit(w->inst, batch);
    sy_batch_info_t info;
    w->api->batch_info(batch, &info);
    /* Behind requests of its signal that wait already: they go first. */
    int rc = signal_parked(w, info.signal) ? SY_EAGAIN : w->api->emit(w->inst, batch);
    if (rc != SY_EAGAIN || !may_wait(w, info.signal)) return rc;
    uv_timer_t *t = timer_of(w);
    syc_emit_park_t *p = t ? calloc(1, sizeof(*p)) : NULL;
    if (!p) return SY_EAGAIN; /* no memory to wait with: the client retries */
    p->req = *req;
    p->signal = info.signal;
    p->deadline_ms = uv_now(t->loop) + w->max_ms;
    p->done = done;
    p->prev = w->tail;
    if (w->tail)
        w->tail->next = p;
    else
        w->head = p;
    w->tail = p;
    w->parked++;
    if (w->m_parked) w->api->metric_add(w->m_parked, 1);
    if (!uv_is_active((uv_handle_t *)t)) uv_timer_start(t, on_tick, 1, 1);
    *park = p;
    return SYC_EMIT_PARKED;
}

void syc_emit_cancel(syc_emit_wait_t *w, syc_emit_park_t *park)
{
    if (!park) return;
    unlink_park(w, park);
    free(park);
    if (!w->head && w->timer) uv_timer_stop((uv_timer_t *)w->timer);
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

void syc_emit_wait_close(syc_emit_wait_t *w)
{
    if (w->closed) return;
    w->closed = true;
    while (w->head)
        finish(w, w->head, SY_ECLOSED);
    if (w->timer) uv_close((uv_handle_t *)w->timer, on_timer_closed);
    w->timer = NULL;
}
