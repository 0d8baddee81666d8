#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <switchyard/plugin.h>

struct sy__call_s {
    sy__call_t *next;
    sy__thread_fn fn;
    void *arg;
    bool done;
};

static _Thread_local const sy__thread_t *current_thread;

static void run_calls(sy__thread_t *t)
{
    pthread_mutex_lock(&t->mu);
    while (t->calls) {
        sy__call_t *c = t->calls;
        t->calls = c->next;
        pthread_mutex_unlock(&t->mu);
        c->fn(c->arg);
        pthread_mutex_lock(&t->mu);
        c->done = true;
        pthread_cond_broadcast(&t->cond);
    }
    pthread_mutex_unlock(&t->mu);
}

static void on_async(uv_async_t *h)
{
    sy__thread_t *t = h->data;
    run_calls(t);
    if (t->on_wake && !t->closing) t->on_wake(t->wake_arg);
}

static void thread_main(void *arg)
{
    sy__thread_t *t = arg;
    current_thread = t;
    uv_run(&t->loop, UV_RUN_DEFAULT);
    run_calls(t); /* calls that raced with closing: run them rather than hang */
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
    if (uv_async_init(&t->loop, &t->wake, on_async) != 0) {
        uv_loop_close(&t->loop);
        return SY_ERROR;
    }
    t->wake.data = t;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cond, NULL);
    if (uv_thread_create(&t->tid, thread_main, t) != 0) {
        uv_close((uv_handle_t *)&t->wake, NULL);
        uv_run(&t->loop, UV_RUN_DEFAULT);
        uv_loop_close(&t->loop);
        return SY_ERROR;
    }
    t->started = true;
    return SY_OK;
}

bool sy__thread_is_current(const sy__thread_t *t)
{
    return current_thread == t;
}

int sy__thread_call(sy__thread_t *t, sy__thread_fn fn, void *arg)
{
    if (sy__thread_is_current(t)) {
        fn(arg);
        return SY_OK;
    }
    sy__call_t c = {.fn = fn, .arg = arg};
    pthread_mutex_lock(&t->mu);
    if (t->closing || t->exited) {
        pthread_mutex_unlock(&t->mu);
        return SY_ECLOSED;
    }
    /* Append, so that calls run in the order they were made. */
    sy__call_t **pp = &t->calls;
    while (*pp)
        pp = &(*pp)->next;
    *pp = &c;
    pthread_mutex_unlock(&t->mu);
    uv_async_send(&t->wake);
    pthread_mutex_lock(&t->mu);
    while (!c.done)
        pthread_cond_wait(&t->cond, &t->mu);
    pthread_mutex_unlock(&t->mu);
    return SY_OK;
}

void sy__thread_wake(sy__thread_t *t)
{
    uv_async_send(&t->wake);
}

static void close_wake(void *arg)
{
    sy__thread_t *t = arg;
    pthread_mutex_lock(&t->mu);
    t->closing = true;
    pthread_mutex_unlock(&t->mu);
    uv_close((uv_handle_t *)&t->wake, NULL);
}

int sy__thread_stop(sy__thread_t *t, uint64_t timeout_ms)
{
    if (!t->started) return SY_OK;
    sy__thread_call(t, close_wake, t);
    pthread_mutex_lock(&t->mu);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)(timeout_ms / 1000);
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    while (!t->exited && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&t->cond, &t->mu, &deadline);
    bool exited = t->exited;
    pthread_mutex_unlock(&t->mu);
    if (!exited) return SY_ERROR;
    uv_thread_join(&t->tid);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cond);
    t->started = false;
    return SY_OK;
}
