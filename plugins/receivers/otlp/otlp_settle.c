/*
 * otlp_settle.c - waits for settle tokens (see otlp_settle.h).
 *
 * A token's done() runs on whichever thread settles last (an exporter's, a
 * pipeline's, or ours). It queues its wait under the hub's mutex and wakes the
 * loop with a uv_async; the loop thread answers. Waits live until their token
 * is done, even when answered earlier (timeout, shutdown) or forgotten (client
 * gone). The hub outlives the receiver's shutdown for as long as tokens are out.
 */
#include "otlp_settle.h"

#include <pthread.h>
#include <stdlib.h>
#include <uv.h>

#include "otlp.h"

typedef struct otlp_settle_hub_s {
    const sy_host_api_t *api;
    pthread_mutex_t mu;
    otlp_wait_t *done_head; /* under mu */
    size_t refs;            /* under mu: waits not yet freed, + 1 while open */
    bool closed;            /* under mu */
    uv_async_t async;
    uv_timer_t timer;
    unsigned handles_open;
    otlp_wait_t *waiting; /* loop thread */
    uint64_t timeout_ms;
    sy_metric_t *m_timeouts, *m_failed;
} otlp_settle_hub_t;

struct otlp_wait_s {
    otlp_settle_hub_t *hub;
    otlp_wait_t *prev, *next; /* hub->waiting */
    otlp_wait_t *done_next;
    struct sy_settle_s *token;
    int status;
    uint64_t deadline_ms;
    bool answered;
    bool listed;
    otlp_settle_answer_fn answer;
    otlp_state_t *st;
    void *ctx;
    int tag;
};

static void hub_unref_locked_free(otlp_settle_hub_t *h, bool *free_it)
{
    *free_it = --h->refs == 0;
}

static void hub_free(otlp_settle_hub_t *h)
{
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static void unlink_wait(otlp_wait_t *w)
{
    if (!w->listed) return;
    if (w->prev)
        w->prev->next = w->next;
    else
        w->hub->waiting = w->next;
    if (w->next) w->next->prev = w->prev;
    w->listed = false;
}

static void give_answer(otlp_wait_t *w, int status)
{
    if (w->answered) return;
    w->answered = true;
    sy_metric_t *m = status == SY_ETIMEDOUT ? w->hub->m_timeouts : w->hub->m_failed;
    if (status != SY_OK && m) w->hub->api->metric_add(m, 1);
    if (w->ctx) w->answer(w->st, w->ctx, w->tag, status);
}

/* Any thread: the token is settled. */
static void on_done(void *ud, int status)
{
    otlp_wait_t *w = ud;
    otlp_settle_hub_t *h = w->hub;
    w->status = status;
    pthread_mutex_lock(&h->mu);
    if (h->closed) {
        bool free_it;
        hub_unref_locked_free(h, &free_it);
        pthread_mutex_unlock(&h->mu);
        free(w);
        if (free_it) hub_free(h);
        return;
    }
    w->done_next = h->done_head;
    h->done_head = w;
    pthread_mutex_unlock(&h->mu);
    uv_async_send(&h->async);
}

static void on_async(uv_async_t *a)
{
    otlp_settle_hub_t *h = a->data;
    pthread_mutex_lock(&h->mu);
    otlp_wait_t *list = h->done_head;
    h->done_head = NULL;
    pthread_mutex_unlock(&h->mu);
    while (list) {
        otlp_wait_t *w = list;
        list = w->done_next;
        unlink_wait(w);
        give_answer(w, w->status);
        pthread_mutex_lock(&h->mu);
        h->refs--; /* never the last: the hub is open */
        pthread_mutex_unlock(&h->mu);
        free(w);
    }
}

static void on_timer(uv_timer_t *t)
{
    otlp_settle_hub_t *h = t->data;
    uint64_t now = uv_now(t->loop);
    bool any = false;
    for (otlp_wait_t *w = h->waiting; w; w = w->next) {
        if (w->answered) continue;
        if (now >= w->deadline_ms)
            give_answer(w, SY_ETIMEDOUT);
        else
            any = true;
    }
    if (!any) uv_timer_stop(t);
}

static otlp_settle_hub_t *hub_get(otlp_state_t *st)
{
    if (st->settle_hub || st->settle_closed) return st->settle_hub;
    otlp_settle_hub_t *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    uv_loop_t *loop = st->api->loop(st->inst);
    h->api = st->api;
    h->refs = 1;
    h->timeout_ms = st->cfg->settle_timeout > 0 ? (uint64_t)st->cfg->settle_timeout / 1000000u
                                                : OTLP_SETTLE_DEFAULT_MS;
    if (h->timeout_ms == 0) h->timeout_ms = 1;
    h->m_timeouts = st->m_settle_timeouts;
    h->m_failed = st->m_settle_failed;
    pthread_mutex_init(&h->mu, NULL);
    if (uv_async_init(loop, &h->async, on_async) != 0) {
        hub_free(h);
        return NULL;
    }
    h->async.data = h;
    h->handles_open = 1;
    if (uv_timer_init(loop, &h->timer) == 0) {
        h->timer.data = h;
        h->handles_open++;
    }
    st->settle_hub = h;
    return h;
}

otlp_wait_t *otlp_settle_begin(otlp_state_t *st, sy_batch_t *batch, otlp_settle_answer_fn answer,
                               void *ctx, int tag)
{
    const sy_host_api_t *api = st->api;
    if (!SY_API_HAS(api, settle_durable) || !api->settle_wanted(st->inst)) return NULL;
    otlp_settle_hub_t *h = hub_get(st);
    if (!h || h->handles_open < 2) return NULL;
    otlp_wait_t *w = calloc(1, sizeof(*w));
    if (!w) return NULL;
    w->hub = h;
    w->answer = answer;
    w->st = st;
    w->ctx = ctx;
    w->tag = tag;
    w->token = api->settle_new(st->inst, on_done, w);
    if (!w->token) {
        free(w);
        return NULL;
    }
    pthread_mutex_lock(&h->mu);
    h->refs++;
    pthread_mutex_unlock(&h->mu);
    if (api->settle_attach(batch, w->token) != SY_OK) {
        w->answered = true; /* answered at once by the caller */
        w->ctx = NULL;
        api->settle_release(w->token); /* done() frees the wait */
        return NULL;
    }
    return w;
}

void otlp_settle_emitted(otlp_wait_t *w, int rc)
{
    if (!w) return;
    otlp_settle_hub_t *h = w->hub;
    if (rc != SY_OK) {
        w->answered = true; /* the caller answers the refusal */
        w->ctx = NULL;
    } else {
        w->deadline_ms = uv_now(h->async.loop) + h->timeout_ms;
        w->next = h->waiting;
        if (h->waiting) h->waiting->prev = w;
        h->waiting = w;
        w->listed = true;
        if (!uv_is_active((uv_handle_t *)&h->timer)) {
            uint64_t tick = h->timeout_ms / 4 ? h->timeout_ms / 4 : 1;
            uv_timer_start(&h->timer, on_timer, tick > 100 ? 100 : tick, tick > 100 ? 100 : tick);
        }
    }
    /* May settle at once (and call on_done here): its answer still goes through
     * the loop, after this returns. */
    h->api->settle_release(w->token);
}

void otlp_settle_forget(otlp_wait_t *w)
{
    if (!w) return;
    w->answered = true;
    w->ctx = NULL;
}

static void on_hub_handle_closed(uv_handle_t *handle)
{
    otlp_settle_hub_t *h = handle->data;
    if (--h->handles_open > 0) return;
    pthread_mutex_lock(&h->mu);
    h->closed = true;
    otlp_wait_t *list = h->done_head;
    h->done_head = NULL;
    size_t n = 0;
    for (otlp_wait_t *w = list; w; w = w->done_next)
        n++;
    h->refs -= n + 1; /* those waits and the receiver's */
    bool free_it = h->refs == 0;
    pthread_mutex_unlock(&h->mu);
    while (list) {
        otlp_wait_t *w = list;
        list = w->done_next;
        free(w);
    }
    if (free_it) hub_free(h);
}

void otlp_settle_close(otlp_state_t *st)
{
    otlp_settle_hub_t *h = st->settle_hub;
    st->settle_closed = true;
    if (!h) return;
    st->settle_hub = NULL;
    /* Answered "unavailable": the client sends again (a duplicate, never a loss). */
    on_async(&h->async);
    for (otlp_wait_t *w = h->waiting; w; w = w->next)
        give_answer(w, SY_ECLOSED);
    h->waiting = NULL; /* the waits stay until their tokens are done */
    if (h->handles_open > 1) uv_close((uv_handle_t *)&h->timer, on_hub_handle_closed);
    uv_close((uv_handle_t *)&h->async, on_hub_handle_closed);
}
