/*
 * loop.c - worker threads (one libuv loop each), their control-plane calls with
 * deadlines, and the components' coalescing wake-ups.
 */
#include "loop.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <switchyard/plugin.h>

/*
 * A control-plane call. Heap-allocated so that a caller that gives up at its
 * deadline can leave it behind: whoever is last to let go of it frees it (the
 * caller when the call finished or never started; the worker when the caller
 * had abandoned it while it ran). Every field is guarded by the worker's mu.
 */
struct sy__call_s {
    sy__call_t *next;
    sy__thread_fn fn;
    void *arg;
    bool running, done, abandoned;
};

static _Thread_local const sy__thread_t *current_thread;

/* Wake-ups that this worker's callbacks sent during the current loop iteration,
 * sent when its I/O callbacks are done (see sy__wake_send). Each holds one count
 * of its wake's `senders` until sent, so that it cannot be closed under it. */
#define SY__DEFER_MAX 16
static _Thread_local sy__wake_t *deferred[SY__DEFER_MAX];
static _Thread_local size_t ndeferred;

/*
 * Why not uv_async_send(): libuv marks the handle busy, writes to the loop's
 * descriptor and marks it done, and the woken loop spins (pause, then
 * sched_yield) while a handle is marked busy. On one CPU the write itself wakes
 * the loop's thread, which preempts the sender between the two marks and spins
 * until the scheduler runs the sender again: 1.6 % of the pass-through router's
 * CPU in that spin, pinned to one core (docs/benchmarks.md). Here the flag only
 * coalesces: a sender that finds it clear sets it and writes the eventfd; the
 * worker reads the eventfd, clears the flag, then runs the component, which
 * drains its queue. A send whose flag was still set came before the clear, so
 * the drain after it sees what was pushed; a send after the clear writes again.
 * Nothing waits for anybody.
 */
static void send_now(sy__wake_t *w)
{
    if (atomic_load(&w->open)) {
        /* Either the worker's drain, after its clear and fence, sees what the
         * caller pushed before this fence, or this exchange sees the clear
         * and writes again (the two fences are ordered one way or the other:
         * the store-load pattern, which release/acquire alone does not order). */
        atomic_thread_fence(memory_order_seq_cst);
        if (!atomic_exchange(&w->pending, true)) {
            uint64_t one = 1;
            ssize_t n;
            do
                n = write(w->fd, &one, sizeof(one));
            while (n < 0 && errno == EINTR);
            /* EAGAIN: the counter is at its maximum, so it is readable anyway. */
        }
    }
    atomic_fetch_sub(&w->senders, 1);
}

static void flush_deferred(void)
{
    size_t n = ndeferred;
    ndeferred = 0;
    for (size_t i = 0; i < n; i++)
        send_now(deferred[i]);
}

static void on_check(uv_check_t *h)
{
    (void)h;
    flush_deferred();
}

static void on_prepare(uv_prepare_t *h)
{
    (void)h;
    flush_deferred();
}

uint64_t sy__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void run_calls(sy__thread_t *t)
{
    pthread_mutex_lock(&t->mu);
    while (t->calls) {
        sy__call_t *c = t->calls;
        t->calls = c->next;
        c->running = true;
        pthread_mutex_unlock(&t->mu);
        c->fn(c->arg);
        pthread_mutex_lock(&t->mu);
        c->done = true;
        if (c->abandoned)
            free(c);
        else
            pthread_cond_broadcast(&t->cond);
    }
    pthread_mutex_unlock(&t->mu);
}

static void on_ctl(uv_async_t *h)
{
    run_calls(h->data);
}

static void thread_main(void *arg)
{
    sy__thread_t *t = arg;
    current_thread = t;
    char name[16] = ""; /* the kernel keeps 15 characters */
    memcpy(name, t->name, sizeof(name) - 1);
    pthread_setname_np(pthread_self(), name);
    if (t->batch_sched) {
        /*
         * The pipelines' and exporters' workers do not preempt a receiver when
         * it wakes them: a receiver's wake-up comes at the end of each loop
         * iteration, and on a CPU they share (a small host, a CPU quota, a
         * pinned router) the woken worker would take the CPU at once for one
         * batch, then the receiver again for the next request: a context switch
         * each way per request. SCHED_BATCH (same priority, no privilege
         * needed) is still fair over time; it only does not preempt on
         * wake-up, so the worker runs when the receiver waits for input, or at
         * the scheduler's tick, and drains everything queued by then. On a
         * CPU of its own it runs at once as before. Not fatal if refused.
         */
        struct sched_param sp;
        int policy;
        if (pthread_getschedparam(pthread_self(), &policy, &sp) == 0 && policy == SCHED_OTHER) {
            /* (a policy the operator chose, real-time or idle, is left alone) */
            sp.sched_priority = 0;
            (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
        }
    }
    uv_run(&t->loop, UV_RUN_DEFAULT);
    flush_deferred();
    run_calls(t); /* calls that raced with closing: run them rather than strand them */
    flush_deferred();
    if (t->on_exit) t->on_exit(t->exit_arg);
    uv_loop_close(&t->loop);
    pthread_mutex_lock(&t->mu);
    t->exited = true;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->mu);
}

int sy__thread_start(sy__thread_t *t, const char *name)
{
    snprintf(t->name, sizeof(t->name), "%s", name);
    if (uv_loop_init(&t->loop) != 0) return SY_ERROR;
    if (uv_async_init(&t->loop, &t->ctl, on_ctl) != 0) {
        uv_loop_close(&t->loop);
        return SY_ERROR;
    }
    t->ctl.data = t;
    /* Unreferenced: it never keeps the loop alive; closed with ctl. */
    uv_check_init(&t->loop, &t->check);
    uv_check_start(&t->check, on_check);
    uv_unref((uv_handle_t *)&t->check);
    uv_prepare_init(&t->loop, &t->prepare);
    uv_prepare_start(&t->prepare, on_prepare);
    uv_unref((uv_handle_t *)&t->prepare);
    pthread_mutex_init(&t->mu, NULL);
    /* Deadlines are on CLOCK_MONOTONIC, so that a clock step cannot stretch them. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (uv_thread_create(&t->tid, thread_main, t) != 0) {
        uv_close((uv_handle_t *)&t->ctl, NULL);
        uv_close((uv_handle_t *)&t->check, NULL);
        uv_close((uv_handle_t *)&t->prepare, NULL);
        uv_run(&t->loop, UV_RUN_DEFAULT);
        uv_loop_close(&t->loop);
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cond);
        return SY_ERROR;
    }
    t->started = true;
    return SY_OK;
}

bool sy__thread_is_current(const sy__thread_t *t)
{
    return current_thread == t;
}

/* Waits on t->cond (mu held) until deadline_ms; false once it has passed. */
static bool wait_until(sy__thread_t *t, uint64_t deadline_ms)
{
    if (deadline_ms == 0) {
        pthread_cond_wait(&t->cond, &t->mu);
        return true;
    }
    if (sy__now_ms() >= deadline_ms) return false;
    struct timespec ts = {.tv_sec = (time_t)(deadline_ms / 1000),
                          .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};
    return pthread_cond_timedwait(&t->cond, &t->mu, &ts) != ETIMEDOUT || sy__now_ms() < deadline_ms;
}

int sy__thread_call(sy__thread_t *t, sy__thread_fn fn, void *arg, uint64_t deadline_ms)
{
    if (sy__thread_is_current(t)) {
        fn(arg);
        return SY_OK;
    }
    sy__call_t *c = calloc(1, sizeof(*c));
    if (!c) return SY_ENOMEM;
    c->fn = fn;
    c->arg = arg;
    pthread_mutex_lock(&t->mu);
    if (t->closing || t->exited) {
        pthread_mutex_unlock(&t->mu);
        free(c);
        return SY_ECLOSED;
    }
    /* Append, so that calls run in the order they were made. */
    sy__call_t **pp = &t->calls;
    while (*pp)
        pp = &(*pp)->next;
    *pp = c;
    pthread_mutex_unlock(&t->mu);
    uv_async_send(&t->ctl);

    pthread_mutex_lock(&t->mu);
    while (!c->done && wait_until(t, deadline_ms)) {
    }
    int rc = SY_OK;
    if (c->done) {
        free(c);
    } else if (!c->running) {
        /* Never started: take it off the queue, so that it never will. */
        for (pp = &t->calls; *pp; pp = &(*pp)->next) {
            if (*pp == c) {
                *pp = c->next;
                break;
            }
        }
        free(c);
        rc = SY__ETIMEDOUT;
    } else {
        c->abandoned = true; /* the worker frees it if fn ever returns */
        rc = SY__ETIMEDOUT;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static void close_ctl(void *arg)
{
    sy__thread_t *t = arg;
    pthread_mutex_lock(&t->mu);
    t->closing = true;
    pthread_mutex_unlock(&t->mu);
    uv_close((uv_handle_t *)&t->ctl, NULL);
    uv_close((uv_handle_t *)&t->check, NULL);
    uv_close((uv_handle_t *)&t->prepare, NULL);
}

int sy__thread_stop_begin(sy__thread_t *t, uint64_t deadline_ms)
{
    if (!t->started) return SY_OK;
    int rc = sy__thread_call(t, close_ctl, t, deadline_ms);
    return rc == SY_ECLOSED ? SY_OK : rc; /* already closing */
}

static void thread_join(sy__thread_t *t)
{
    uv_thread_join(&t->tid);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cond);
    t->started = false;
}

bool sy__thread_try_join(sy__thread_t *t)
{
    if (!t->started) return true;
    pthread_mutex_lock(&t->mu);
    bool exited = t->exited;
    pthread_mutex_unlock(&t->mu);
    if (exited) thread_join(t);
    return exited;
}

int sy__thread_stop(sy__thread_t *t, uint64_t deadline_ms)
{
    if (!t->started) return SY_OK;
    int rc = sy__thread_stop_begin(t, deadline_ms);
    if (rc == SY__ETIMEDOUT) return rc;
    pthread_mutex_lock(&t->mu);
    while (!t->exited && wait_until(t, deadline_ms)) {
    }
    bool exited = t->exited;
    pthread_mutex_unlock(&t->mu);
    if (!exited) return SY__ETIMEDOUT;
    thread_join(t);
    return SY_OK;
}

/* ---- wake-ups ------------------------------------------------------------------ */

static void on_wake(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    sy__wake_t *w = h->data;
    uint64_t count;
    while (read(w->fd, &count, sizeof(count)) < 0 && errno == EINTR)
        ;
    atomic_store(&w->pending, false);
    atomic_thread_fence(memory_order_seq_cst); /* before the drain's loads: see send_now */
    if (atomic_load_explicit(&w->open, memory_order_relaxed)) w->fn(w->arg);
}

int sy__wake_open(sy__wake_t *w, sy__thread_t *t, sy__thread_fn fn, void *arg)
{
    w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->fd < 0) return SY_ERROR;
    if (uv_poll_init(&t->loop, &w->poll, w->fd) != 0) {
        close(w->fd);
        w->fd = -1;
        return SY_ERROR;
    }
    w->poll.data = w;
    if (uv_poll_start(&w->poll, UV_READABLE, on_wake) != 0) {
        uv_close((uv_handle_t *)&w->poll, NULL);
        close(w->fd); /* safe once uv_close() is called (libuv's uv_poll_t) */
        w->fd = -1;
        return SY_ERROR;
    }
    w->thread = t;
    w->fn = fn;
    w->arg = arg;
    atomic_init(&w->pending, false);
    atomic_init(&w->senders, 0);
    atomic_init(&w->open, true);
    return SY_OK;
}

/*
 * A send may come from any thread at any time, even while the component closes
 * (an exporter waking a pipeline that has just finished draining), and
 * uv_async_send() on a closed handle writes to a closed descriptor. So a sender
 * announces itself before it looks at `open`, and the closer clears `open` before
 * it looks at `senders`: with both sides sequentially consistent, either the
 * sender sees the handle closed, or the closer sees the sender and waits the few
 * instructions until it is done.
 */
/*
 * On a worker that defers (defer_wakes: the receivers'), a wake-up of a component
 * on another worker is sent at the end of this loop iteration rather than now:
 * the woken thread would otherwise often take the CPU at once, and a receiver's
 * answer to its client, written a moment later in the same callback, would wait
 * behind the pipeline's work (the latency of every request on a busy core).
 * Wake-ups coalesce anyway; the pipeline gets the batch a few microseconds later.
 * Deferred sends go out before the loop next blocks (on_prepare, on_check).
 */
void sy__wake_send(sy__wake_t *w)
{
    atomic_fetch_add(&w->senders, 1);
    if (current_thread && current_thread->defer_wakes && w->thread != current_thread) {
        for (size_t i = 0; i < ndeferred; i++)
            if (deferred[i] == w) {
                atomic_fetch_sub(&w->senders, 1); /* already pending */
                return;
            }
        if (ndeferred < SY__DEFER_MAX) {
            deferred[ndeferred++] = w;
            return;
        }
    }
    send_now(w);
}

void sy__wake_close(sy__wake_t *w)
{
    if (!atomic_load(&w->open)) return;
    atomic_store(&w->open, false);
    /* This thread's own deferred send of it would never end the wait below. */
    for (size_t i = 0; i < ndeferred; i++)
        if (deferred[i] == w) {
            deferred[i] = deferred[--ndeferred];
            atomic_fetch_sub(&w->senders, 1);
            break;
        }
    while (atomic_load(&w->senders) != 0)
        sched_yield();
    uv_close((uv_handle_t *)&w->poll, NULL);
    close(w->fd); /* safe once uv_close() is called (libuv's uv_poll_t) */
    w->fd = -1;
}
