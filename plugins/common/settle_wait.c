/*
 * settle_wait.c - waits for settle tokens (see settle_wait.h).
 *
 * A token's done() runs on whichever thread settles last (an exporter's, a
 * pipeline's, or ours). It queues its wait under the hub's mutex and wakes the
 * loop with a uv_async; the loop thread answers. Waits live until their token
 * is done, even when answered earlier (timeout, shutdown) or forgotten (client
 * gone). The hub outlives the receiver's shutdown for as long as tokens are out.
 */
#include "settle_wait.h"

#include <pthread.h>
#include <stdlib.h>
#include <uv.h>

typedef struct syc_settle_hub_s {
    const sy_host_api_t *api;
    pthread_mutex_t mu;
    syc_settle_wait_t *done_head; /* under mu */
    size_t refs;                  /* under mu: waits not yet freed, + 1 while open */
    bool closed;                  /* under mu */
    uv_async_t async;
    uv_timer_t timer;
    unsigned handles_open;
    syc_settle_wait_t *waiting; /* loop thread */
    uint64_t timeout_ms;
    sy_metric_t *m_timeouts, *m_failed;
} syc_settle_hub_t;

struct syc_settle_wait_s {
    syc_settle_hub_t *hub;
    syc_settle_wait_t *prev, *next; /* hub->waiting */
    syc_settle_wait_t *done_next;
    struct sy_settle_s *token;
    int status;
    uint64_t deadline_ms;
    bool answered;
    bool listed;
    syc_settle_answer_fn answer;
    void *owner;
    void *ctx;
    int tag;
};

static void hub_unref_locked_free(syc_settle_hub_t *h, bool *free_it)
{
    *free_it = --h->refs == 0;
}

static void hub_free(syc_settle_hub_t *h)
{
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static void unlink_wait(syc_settle_wait_t *w)
{
    if (!w->listed) return;
    if (w->prev)
        w->prev->next = w->next;
    else
        w->hub->waiting = w->next;
    if (w->next) w->next->prev = w->prev;
    w->listed = false;
}

static void give_answer(syc_settle_wait_t *w, int status)
{
    if (w->answered) return;
    w->answered = true;
    sy_metric_t *m = status == SYC_SETTLE_TIMEDOUT ? w->hub->m_timeouts : w->hub->m_failed;
    if (status != SY_OK && m) w->hub->api->metric_add(m, 1);
    if (w->ctx) w->answer(w->owner, w->ctx, w->tag, status);
}

/* Any thread: the token is settled. */
static void on_done(void *ud, int status)
{
    syc_settle_wait_t *w = ud;
    syc_settle_hub_t *h = w->hub;
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
    syc_settle_hub_t *h = a->data;
    pthread_mutex_lock(&h->mu);
    syc_settle_wait_t *list = h->done_head;
    h->done_head = NULL;
    pthread_mutex_unlock(&h->mu);
    while (list) {
        syc_settle_wait_t *w = list;
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
    syc_settle_hub_t *h = t->data;
    uint64_t now = uv_now(t->loop);
    bool any = false;
    for (syc_settle_wait_t *w = h->waiting; w; w = w->next) {
        if (w->answered) continue;
        if (now >= w->deadline_ms)
            give_answer(w, SYC_SETTLE_TIMEDOUT);
        else
            any = true;
    }
    if (!any) uv_timer_stop(t);
}

static syc_settle_hub_t *hub_get(syc_settle_t *s)
{
    if (s->hub || s->closed) return s->hub;
    syc_settle_hub_t *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    uv_loop_t *loop = s->api->loop(s->inst);
    h->api = s->api;
    h->refs = 1;
    h->timeout_ms = s->timeout_ms;
    h->m_timeouts = s->m_timeouts;
    h->m_failed = s->m_failed;
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
    s->hub = h;
    return h;
}

void syc_settle_init(syc_settle_t *s, const sy_host_api_t *api, sy_instance_t *inst,
                     int64_t timeout_ns, sy_metric_t *m_timeouts, sy_metric_t *m_failed)
{
    s->api = api;
    s->inst = inst;
    s->timeout_ms = timeout_ns > 0 ? (uint64_t)timeout_ns / 1000000u : SYC_SETTLE_DEFAULT_MS;
    if (s->timeout_ms == 0) s->timeout_ms = 1;
    s->m_timeouts = m_timeouts;
    s->m_failed = m_failed;
    s->hub = NULL;
    s->closed = false;
}

syc_settle_wait_t *syc_settle_begin(syc_settle_t *s, sy_batch_t *batch, syc_settle_answer_fn answer,
                                    void *owner, void *ctx, int tag)
{
    const sy_host_api_t *api = s->api;
    if (!api || !SY_API_HAS(api, settle_durable) || !api->settle_wanted(s->inst)) return NULL;
    syc_settle_hub_t *h = hub_get(s);
    if (!h || h->handles_open < 2) return NULL;
    syc_settle_wait_t *w = calloc(1, sizeof(*w));
    if (!w) return NULL;
    w->hub = h;
    w->answer = answer;
    w->owner = owner;
    w->ctx = ctx;
    w->tag = tag;
    w->token = api->settle_new(s->inst, on_done, w);
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

void syc_settle_emitted(syc_settle_wait_t *w, int rc)
{
    if (!w) return;
    syc_settle_hub_t *h = w->hub;
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

void syc_settle_forget(syc_settle_wait_t *w)
{
    if (!w) return;
    w->answered = true;
    w->ctx = NULL;
}

static void on_hub_handle_closed(uv_handle_t *handle)
{
    syc_settle_hub_t *h = handle->data;
    if (--h->handles_open > 0) return;
    pthread_mutex_lock(&h->mu);
    h->closed = true;
    syc_settle_wait_t *list = h->done_head;
    h->done_head = NULL;
    size_t n = 0;
    for (syc_settle_wait_t *w = list; w; w = w->done_next)
        n++;
    h->refs -= n + 1; /* those waits and the receiver's */
    bool free_it = h->refs == 0;
    pthread_mutex_unlock(&h->mu);
    while (list) {
        syc_settle_wait_t *w = list;
        list = w->done_next;
        free(w);
    }
    if (free_it) hub_free(h);
}

void syc_settle_close(syc_settle_t *s)
{
    syc_settle_hub_t *h = s->hub;
    s->closed = true;
    if (!h) return;
    s->hub = NULL;
    /* Answered "unavailable": the client sends again (a duplicate, never a loss). */
    on_async(&h->async);
    for (syc_settle_wait_t *w = h->waiting; w; w = w->next)
        give_answer(w, SY_ECLOSED);
    h->waiting = NULL; /* the waits stay until their tokens are done */
    if (h->handles_open > 1) uv_close((uv_handle_t *)&h->timer, on_hub_handle_closed);
    uv_close((uv_handle_t *)&h->async, on_hub_handle_closed);
}
